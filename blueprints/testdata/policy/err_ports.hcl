policy "x" {
  network "n" {
    endpoint {
      host  = "example.com"
      ports = [0, 70000]
    }
    endpoint {
      host  = "example.org"
      port  = 443
      ports = [443]
    }
  }
}

sandbox "s" {
  policy = policy.x
}
