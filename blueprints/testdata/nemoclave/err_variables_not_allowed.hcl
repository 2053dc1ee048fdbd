variable "v" {
  default = ">= 0.1"
}

nemoclave {
  required_version = var.v
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
