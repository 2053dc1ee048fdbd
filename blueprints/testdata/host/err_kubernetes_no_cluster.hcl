policy "p" {
  unknown_hosts = "deny"
}

sandbox "local-box" {
  policy = policy.p
}

sandbox "cluster-box" {
  driver = "kubernetes"
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.cluster-box
  command = ["nemoclave", "agent"]
}
