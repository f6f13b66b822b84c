// cli/verbs.h: one line per `llem` verb: LLEM_VERB(name, one-line help). The verb's entry
// point is `int cli_<name>(int argc, char **argv)` (argv[0] is the verb), in cli/<name>.c,
// returning the process exit status. main.c is the only file that expands this list.
LLEM_VERB(version, "print the llem version")
LLEM_VERB(quantize, "quantize a GGUF model: llem quantize IN.gguf OUT.gguf TYPE")
LLEM_VERB(gen, "write a synthetic GGUF model: llem gen --preset tiny --arch qwen3")
LLEM_VERB(show, "show a GGUF model's architecture, size, quantization and metadata")
LLEM_VERB(tokenize, "print the token ids of stdin text: llem tokenize FILE.gguf [--special]")
LLEM_VERB(detokenize, "print the text of token ids read on stdin: llem detokenize FILE.gguf")
LLEM_VERB(eval, "write the logits of every position: llem eval FILE --tokens \"1 2\" --logits-out F")
LLEM_VERB(template, "render a chat template: llem template FILE.jinja|.gguf [--messages F] [--var k=v]")
LLEM_VERB(run, "complete a prompt with a GGUF model: llem run FILE.gguf [PROMPT]")
LLEM_VERB(bench, "measure prompt and generation speed: llem bench -m FILE [-p 512] [-n 128]")
LLEM_VERB(serve, "serve the Ollama and OpenAI HTTP APIs: llem serve [--host H:P] [--model NAME=PATH]")
