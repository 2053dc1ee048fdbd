locals {
  c = "${local.b}-c"
  b = "${local.a}-b"
  a = "a"
}

sandbox "t" {
  policy = policy.p
  environment = {
    C = local.c
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
