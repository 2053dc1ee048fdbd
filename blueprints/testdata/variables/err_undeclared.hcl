sandbox "t" {
  policy = policy.p
  environment = {
    X = var.modle
  }
}

variable "model" {
  default = "m"
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
