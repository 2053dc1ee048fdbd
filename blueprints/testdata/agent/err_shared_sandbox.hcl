policy "p" {
  unknown_hosts = "deny"
}

sandbox "box" {
  policy = policy.p
}

agent "coder" {
  sandbox = sandbox.box
  command = ["nemoclave", "agent"]
}

agent "reviewer" {
  sandbox = sandbox.box
  command = ["nemoclave", "agent"]
}
