nemoclave {
  required_plugins = {
    wc    = { source = "example.com/acme/wc", version = "~~> 1" }
    nosrc = { version = "1.0" }
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
