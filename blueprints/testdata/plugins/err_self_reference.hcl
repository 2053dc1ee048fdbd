plugin "llm" "rec" {
  source = "./plugins/relay"
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
