plugin "memory" "m" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.locl
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
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
