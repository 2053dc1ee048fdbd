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
    endpoint {
      host = "under_score.example.com"
    }
    endpoint {
      host = "10.0.0.300"
    }
    endpoint {
      host = "fd00::1"
    }
  }
}

sandbox "s" {
  policy = policy.x
}
