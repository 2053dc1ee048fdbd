variable "mode" {
  type    = string
  default = "fast"
  validation {
    condition     = contains(["safe", "strict"], var.mode)
    error_message = "mode must be safe or strict."
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
