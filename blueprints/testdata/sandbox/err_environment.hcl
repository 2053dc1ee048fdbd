sandbox "t" {
  policy = policy.p
  environment = {
    HTTPS_PROXY    = "http://evil"
    NEMOCLAVE_MODE = "x"
    "bad-name"     = "1"
    API_TOKEN      = "abc"
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
