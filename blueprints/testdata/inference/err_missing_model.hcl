plugin "llm" "nim" {
  source = "builtin/llm-openai"
}

plugin "tools" "t" {
  source = "builtin/tools-files"
}

inference {
  model "a" {
    provider = plugin.llm.nim
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
