sandbox "t" {
  driver = "kubernetes"
  policy = policy.p
  resources {
    memory = "lots"
    cpus   = -1
  }
  kubernetes {
    storage = "10 parsecs"
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
