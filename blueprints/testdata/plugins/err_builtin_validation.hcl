plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = "c.json"
    mode     = "rewind"
  }
}

plugin "embeddings" "e" {
  source = "builtin/embeddings-hash"
  config {
    dimensions = 9000
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
