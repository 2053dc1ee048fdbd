plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    base_url = "https://integrate.api.nvidia.com/v1"
    api_key  = credential("MISSING_API_KEY")
  }
}

plugin "llm" "backup" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("MISSING_API_KEY")
  }
}

plugin "llm" "ok" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("PRESENT_API_KEY")
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
