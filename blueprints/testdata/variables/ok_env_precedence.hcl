variable "from_env" {
  type    = string
  default = "from-default"
}

sandbox "t" {
  policy = policy.p
  environment = {
    VALUE = var.from_env
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
