plugin "llm" "rec" {
  source = "builtin/llm-replay"
  config {
    cassette = "c.json"
    mode     = "record"
    upstream = plugin.llm.rec
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
