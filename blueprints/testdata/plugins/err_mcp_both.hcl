plugin "tools" "m" {
  source  = "mcp"
  command = ["server"]
  url     = "https://example.com/mcp"
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
