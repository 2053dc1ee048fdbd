variable "a" {
  default = 1
}

variable "b" {
  default = 2
  validation {
    condition     = var.b > var.a
    error_message = "b must exceed a."
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
