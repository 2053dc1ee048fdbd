plugin "memory" "m" {
  source = "builtin/memory-sqlite"
}

agent "b" {
  sandbox   = sandbox.s
  command   = ["x"]
  tools     = [plugin.memory.m]
  memory    = policy.p
  retrieval = plugin.retrieval.none
}

policy "p" {
  unknown_hosts = "deny"
}

sandbox "s" {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.a
  command = ["nemoclave", "agent"]
}

sandbox "a" {
  policy = policy.p
}
