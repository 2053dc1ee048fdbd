plugin "llm" "nim" {
  source = "builtin/llm-openai"
}

plugin "memory" "m" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.llm.nim
  }
}

policy "p" {
  unknown_hosts = "deny"
}

sandbox "s" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.s
  command = ["nemoclave", "agent"]
}
