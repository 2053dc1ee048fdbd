agent "b" {
  sandbox = sandbox.s
  command = ["x"]
  model   = "smart"
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
