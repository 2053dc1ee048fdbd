plugin "llm" "nim" {
  source = "builtin/llm-openai"
}

inference {
  model "smart" {
    provider = plugin.llm.nim
    model    = "m"
  }
}

agent "b" {
  sandbox = sandbox.s
  command = ["x"]
  model   = "smrat"
  subagent "r" {
    model = "dumb"
  }
}

policy "p" {
  unknown_hosts = "deny"
}

sandbox "s" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.a
  command = ["nemoclave", "agent"]
}

sandbox "a" {
  policy = policy.p
}
