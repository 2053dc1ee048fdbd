policy "p" {
  unknown_hosts = "deny"
}

sandbox "My_Box" {
  policy = policy.p
}

sandbox "trailing-" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.My_Box
  command = ["nemoclave", "agent"]
}
