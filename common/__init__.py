"""Small helpers that voice/, pipelines/ and assistant/ all need (no model code here)."""
