policy "corp" {
  presets = ["corp-git", "pypi"]
}

sandbox "corp" {
  policy = policy.corp
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
