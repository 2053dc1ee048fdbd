variable "size" {
  type = number
}

variable "name" {
  type    = string
  default = "default-name"
}

sandbox "sized" {
  policy = policy.p
  resources {
    pids = var.size
  }
  environment = {
    NAME = var.name
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
