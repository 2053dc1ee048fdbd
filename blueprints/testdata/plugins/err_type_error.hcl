plugin "embeddings" "e" {
  source = "builtin/embeddings-hash"
  config {
    dimensions = "lots"
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
