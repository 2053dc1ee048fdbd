plugin "llm" "nim" {
  source = "builtin/llm-openai"
}

plugin "tools" "t" {
  source = "builtin/tools-files"
}

inference {
  model "a" {
    provider = plugin.llm.nim
    model    = "m"
  }
  budget {
    tokens_per_hour = 1000
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
