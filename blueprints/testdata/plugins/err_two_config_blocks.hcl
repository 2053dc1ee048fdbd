plugin "tools" "f" {
  source = "builtin/tools-files"
  config {
    root = "/a"
  }
  config {
    root = "/b"
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
