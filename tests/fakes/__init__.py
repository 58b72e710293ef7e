"""Test doubles that speak real protocols: local HTTP servers (Ollama, OpenAI) and an in-process LLM backend."""
