policy "x" {
  network "bad" {
    endpoint {
      host = "*"
    }
    endpoint {
      host = "api.*.example.com"
    }
    endpoint {
      host = "https://example.com/path"
    }
    endpoint {
      host = "Example.COM"
    }
  }
}

sandbox "s" {
  policy = policy.x
}
