plugin "tools" "f" {
  source = "builtin/tools-files"
}

plugin "tools" "f" {
  source = "builtin/tools-http"
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
