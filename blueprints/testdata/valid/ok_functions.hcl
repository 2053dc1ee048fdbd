locals {
  motd     = trimspace(file("files/motd.txt"))
  rendered = templatefile("files/greeting.tmpl", { name = "platform", items = ["a", "b"] })
  encoded  = jsonencode({ a = 1 })
  math     = max(3, 7) + floor(2.5)
  joined   = join(",", sort(distinct(["b", "a", "b"])))
}

sandbox "fn" {
  policy = policy.p
  environment = {
    MOTD     = local.motd
    RENDERED = local.rendered
    ENCODED  = local.encoded
    MATH     = tostring(local.math)
    JOINED   = local.joined
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
