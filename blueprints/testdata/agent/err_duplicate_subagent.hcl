agent "b" {
  sandbox = sandbox.s
  command = ["x"]
  subagent "r" {
  }
  subagent "r" {
  }
  subagent "q" {
    tool = []
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
