plugin "llm" "n" {
  source = "./plugins/nested"
  config {
    name = "reject"
    retry {
      max = 50
    }
    route {
      path = "/fine"
    }
    route {
      path = "relative"
    }
    index "empty" {
      dims = 0
    }
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
