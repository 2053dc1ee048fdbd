variable "password" {
  type      = string
  default   = "hunter2"
  sensitive = true
}

sandbox "t" {
  policy = policy.p
  environment = {
    DB_PASSWORD = var.password
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
