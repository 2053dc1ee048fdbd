plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("not a name")
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
