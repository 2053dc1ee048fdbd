policy "x" {
  filesystem {
    read_only = ["/usr"]
  }
  filesystem {
    read_only = ["/etc"]
  }
  network "n" {
    endpoint {
      host = "a.example.com"
    }
  }
  network "n" {
    endpoint {
      host = "b.example.com"
    }
  }
}

sandbox "s" {
  policy = policy.x
}
