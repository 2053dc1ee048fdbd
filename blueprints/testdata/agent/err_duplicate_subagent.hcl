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
  sandbox = sandbox.s
  command = ["nemoclave", "agent"]
}
