#!/usr/bin/env bash
# tests/e2e/serve_format.sh: structured output end to end: serve_format.mjs sends JSON schemas
# (Ollama `format`, OpenAI `response_format`) through the npm clients to random-weight models
# (which would otherwise emit garbage) and validates every answer against its schema; a
# thinking model gets the constraint after its thinking. Same setup as serve_tools.sh, in the
# same folder ($LLEM_BUILD_DIR/e2e-node: tests.cmake keeps the two from running at once).
exec env LLEM_E2E_SCRIPT=serve_format.mjs bash "$(dirname "$0")/serve_tools.sh"
