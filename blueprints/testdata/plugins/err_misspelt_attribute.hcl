plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    basee_url = "https://integrate.api.nvidia.com/v1"
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
