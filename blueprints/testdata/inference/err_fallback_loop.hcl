plugin "llm" "nim" {
  source = "builtin/llm-openai"
}

plugin "tools" "t" {
  source = "builtin/tools-files"
}

inference {
  default = "a"
  model "a" {
    provider = plugin.llm.nim
    model    = "m"
    fallback = ["b"]
  }
  model "b" {
    provider = plugin.llm.nim
    model    = "m"
    fallback = ["a"]
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
