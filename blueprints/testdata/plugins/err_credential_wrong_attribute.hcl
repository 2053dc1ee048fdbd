plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    headers = { Authorization = credential("NIM_KEY") }
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
