plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("PRESENT_API_KEY")
  }
}

policy "p" {
  unknown_hosts = "deny"
}

sandbox "s" {
  driver = "local"
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.s
  command = ["nemoclave", "agent"]
}
