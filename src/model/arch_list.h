// model/arch_list.h: one line per supported architecture (its GGUF general.architecture name).
// model.c expands this list into the architecture table; nothing else names architectures.
LLEM_ARCH(llama)
LLEM_ARCH(qwen2)
LLEM_ARCH(qwen3)
