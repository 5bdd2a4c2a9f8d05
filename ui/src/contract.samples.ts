// Captured from the engine serving fixtures/demo by tests/capture-samples.mjs; do not edit.
// Typed with the hand-written contract, so `tsc --noEmit` fails when the types drift from
// real data; the browser test checks the live JSON still has every key of these samples.
import type { Catalog, Health, Resolve } from './contract';

export const healthSample: Health = {
  "config_loaded_at": 1795579570.414,
  "defaults": {
    "max_body_bytes": 1048576,
    "max_concurrency": 20,
    "timeout_ms": 2500
  },
  "functions": {
    "states": [
      {
        "key": "node/blog/[...slug].js@default",
        "name": "blog/[...slug].js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/bytes.js@default",
        "name": "bytes.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/clock@default",
        "name": "clock",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/counter@default",
        "name": "counter",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/counter@v2",
        "name": "counter",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/debug/whoami.js@default",
        "name": "debug/whoami.js",
        "runtime": "node",
        "state": "warm",
        "warm_at": 1795579576.393,
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/get.conflict.js@default",
        "name": "get.conflict.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/page.js@default",
        "name": "page.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/shop/handler.js@default",
        "name": "shop/handler.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/text.js@default",
        "name": "text.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/time.js@default",
        "name": "time.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "node/users/index.js@default",
        "name": "users/index.js",
        "runtime": "node",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/docs/[[...page]].py@default",
        "name": "docs/[[...page]].py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/greet.py@default",
        "name": "greet.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/hello.py@default",
        "name": "hello.py",
        "runtime": "python",
        "state": "warm",
        "warm_at": 1795579581.75,
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/legacy/ping.py@default",
        "name": "legacy/ping.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/pixel.py@default",
        "name": "pixel.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/post.users.py@default",
        "name": "post.users.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/settings/handler.py@default",
        "name": "settings/handler.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/teapot.py@default",
        "name": "teapot.py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/tools@default",
        "name": "tools",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      },
      {
        "key": "python/users/[id].py@default",
        "name": "users/[id].py",
        "runtime": "python",
        "state": "cold",
        "worker_pool": {
          "active": 0,
          "enabled": false,
          "idle_ttl_seconds": 300,
          "max_queue": 0,
          "max_workers": 20,
          "min_warm": 0,
          "overflow_status": 429,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          },
          "queue_poll_ms": 20,
          "queue_timeout_ms": 0,
          "queued": 0
        }
      }
    ],
    "summary": {
      "cold": 20,
      "keep_warm_enabled": 0,
      "pool_active": 0,
      "pool_enabled": 0,
      "pool_queue_drops": 0,
      "pool_queue_overflow_drops": 0,
      "pool_queue_timeout_drops": 0,
      "pool_queued": 0,
      "stale": 0,
      "total": 22,
      "warm": 2
    }
  },
  "functions_root": "/path/to/fixtures/demo",
  "hot_reload": {
    "enabled": true,
    "last_catalog_scan_at": 1795579570.414,
    "watchdog": {
      "active": true,
      "backend": "inotify",
      "enabled": true
    }
  },
  "routing": {
    "mapped_route_conflicts": 0,
    "mapped_routes": 26,
    "shadowed_routes": 1
  },
  "runtime_order": [
    "node",
    "python",
    "php"
  ],
  "runtimes": {
    "node": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0,
            "index": 1,
            "pid": 16770,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 52228096,
            "ts": 1795579590.416,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock"
          }
        ],
        "ts": 1795579590.416,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-node.sock",
      "sockets": [
        {
          "cpu_percent": 0,
          "index": 1,
          "pid": 16770,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 52228096,
          "ts": 1795579590.416,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock"
        }
      ],
      "timeout_ms": 2500
    },
    "php": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0,
            "index": 1,
            "pid": 16772,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 23482368,
            "ts": 1795579590.418,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock"
          }
        ],
        "ts": 1795579590.418,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-php.sock",
      "sockets": [
        {
          "cpu_percent": 0,
          "index": 1,
          "pid": 16772,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 23482368,
          "ts": 1795579590.418,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock"
        }
      ],
      "timeout_ms": 2500
    },
    "python": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0.5,
            "index": 1,
            "pid": 16771,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 25714688,
            "ts": 1795579590.417,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock"
          }
        ],
        "ts": 1795579590.417,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-python.sock",
      "sockets": [
        {
          "cpu_percent": 0.5,
          "index": 1,
          "pid": 16771,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 25714688,
          "ts": 1795579590.417,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock"
        }
      ],
      "timeout_ms": 2500
    }
  },
  "runtimes_missing": {
    "lua": "the lua runtime is not available in this build yet"
  },
  "socket_base_dir": "/tmp/fastfn/s-1234"
};

export const catalogSample: Catalog = {
  "conflict_claimants": {},
  "defaults": {
    "max_body_bytes": 1048576,
    "max_concurrency": 20,
    "timeout_ms": 2500
  },
  "errors": [],
  "functions_root": "/path/to/fixtures/demo",
  "generated_at": 1795579570.414,
  "mapped_route_conflicts": {},
  "mapped_routes": {
    "/blog/:slug*": [
      {
        "allow_hosts": [],
        "entry": "blog/[...slug].js",
        "explicit": false,
        "fn_name": "blog/[...slug].js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/bytes": [
      {
        "allow_hosts": [],
        "entry": "bytes.js",
        "explicit": false,
        "fn_name": "bytes.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/clock": [
      {
        "allow_hosts": [],
        "entry": "node/clock/handler.js",
        "explicit": true,
        "fn_name": "clock",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/clock/*": [
      {
        "allow_hosts": [],
        "entry": "node/clock/handler.js",
        "explicit": true,
        "fn_name": "clock",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/conflict": [
      {
        "allow_hosts": [],
        "entry": "get.conflict.js",
        "explicit": false,
        "fn_name": "get.conflict.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/counter": [
      {
        "allow_hosts": [],
        "entry": "counter/handler.js",
        "explicit": true,
        "fn_name": "counter",
        "force_url": false,
        "methods": [
          "GET",
          "POST"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/counter/*": [
      {
        "allow_hosts": [],
        "entry": "counter/handler.js",
        "explicit": true,
        "fn_name": "counter",
        "force_url": false,
        "methods": [
          "GET",
          "POST"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/counter@v2": [
      {
        "allow_hosts": [],
        "entry": "counter/v2/handler.js",
        "explicit": true,
        "fn_name": "counter",
        "force_url": false,
        "methods": [
          "GET",
          "POST"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "v2"
      }
    ],
    "/counter@v2/*": [
      {
        "allow_hosts": [],
        "entry": "counter/v2/handler.js",
        "explicit": true,
        "fn_name": "counter",
        "force_url": false,
        "methods": [
          "GET",
          "POST"
        ],
        "runtime": "node",
        "source": "config",
        "source_rank": 3,
        "version": "v2"
      }
    ],
    "/debug/whoami": [
      {
        "allow_hosts": [],
        "entry": "debug/whoami.js",
        "explicit": false,
        "fn_name": "debug/whoami.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/docs": [
      {
        "allow_hosts": [],
        "entry": "docs/[[...page]].py",
        "explicit": false,
        "fn_name": "docs/[[...page]].py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/docs/:page*": [
      {
        "allow_hosts": [],
        "entry": "docs/[[...page]].py",
        "explicit": false,
        "fn_name": "docs/[[...page]].py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/greet": [
      {
        "allow_hosts": [],
        "entry": "greet.py",
        "explicit": false,
        "fn_name": "greet.py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/hello": [
      {
        "allow_hosts": [],
        "entry": "hello.py",
        "explicit": false,
        "fn_name": "hello.py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/legacy/ping": [
      {
        "allow_hosts": [],
        "entry": "legacy/ping.py",
        "explicit": false,
        "fn_name": "legacy/ping.py",
        "force_url": false,
        "methods": [
          "GET",
          "POST"
        ],
        "runtime": "python",
        "source": "routes_json",
        "source_rank": 2,
        "version": "default"
      }
    ],
    "/page": [
      {
        "allow_hosts": [],
        "entry": "page.js",
        "explicit": false,
        "fn_name": "page.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/pixel": [
      {
        "allow_hosts": [],
        "entry": "pixel.py",
        "explicit": false,
        "fn_name": "pixel.py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/settings": [
      {
        "allow_hosts": [],
        "entry": "settings/handler.py",
        "explicit": false,
        "fn_name": "settings/handler.py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/shop": [
      {
        "allow_hosts": [],
        "entry": "shop/handler.js",
        "explicit": false,
        "fn_name": "shop/handler.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/teapot": [
      {
        "allow_hosts": [],
        "entry": "teapot.py",
        "explicit": false,
        "fn_name": "teapot.py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/text": [
      {
        "allow_hosts": [],
        "entry": "text.js",
        "explicit": false,
        "fn_name": "text.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/time": [
      {
        "allow_hosts": [],
        "entry": "time.js",
        "explicit": false,
        "fn_name": "time.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/tools": [
      {
        "allow_hosts": [],
        "entry": "python/tools/handler.py",
        "explicit": true,
        "fn_name": "tools",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/tools/*": [
      {
        "allow_hosts": [],
        "entry": "python/tools/handler.py",
        "explicit": true,
        "fn_name": "tools",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "config",
        "source_rank": 3,
        "version": "default"
      }
    ],
    "/users": [
      {
        "allow_hosts": [],
        "entry": "post.users.py",
        "explicit": false,
        "fn_name": "post.users.py",
        "force_url": false,
        "methods": [
          "POST"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      },
      {
        "allow_hosts": [],
        "entry": "users/index.js",
        "explicit": false,
        "fn_name": "users/index.js",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "node",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ],
    "/users/:id": [
      {
        "allow_hosts": [],
        "entry": "users/[id].py",
        "explicit": false,
        "fn_name": "users/[id].py",
        "force_url": false,
        "methods": [
          "GET"
        ],
        "runtime": "python",
        "source": "file",
        "source_rank": 1,
        "version": "default"
      }
    ]
  },
  "runtime_order": [
    "node",
    "python",
    "php"
  ],
  "runtimes": {
    "node": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0,
            "index": 1,
            "pid": 16770,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 52228096,
            "ts": 1795579590.416,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock"
          }
        ],
        "ts": 1795579590.416,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-node.sock",
      "sockets": [
        {
          "cpu_percent": 0,
          "index": 1,
          "pid": 16770,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 52228096,
          "ts": 1795579590.416,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock"
        }
      ],
      "timeout_ms": 2500
    },
    "php": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0,
            "index": 1,
            "pid": 16772,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 23482368,
            "ts": 1795579590.418,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock"
          }
        ],
        "ts": 1795579590.418,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-php.sock",
      "sockets": [
        {
          "cpu_percent": 0,
          "index": 1,
          "pid": 16772,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 23482368,
          "ts": 1795579590.418,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock"
        }
      ],
      "timeout_ms": 2500
    },
    "python": {
      "health": {
        "reason": "ok",
        "sockets": [
          {
            "cpu_percent": 0.5,
            "index": 1,
            "pid": 16771,
            "reason": "ok",
            "restarts": 0,
            "rss_bytes": 25714688,
            "ts": 1795579590.417,
            "up": true,
            "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock"
          }
        ],
        "ts": 1795579590.417,
        "up": true
      },
      "routing": "single",
      "socket": "unix:/tmp/fastfn/s-1234/fn-python.sock",
      "sockets": [
        {
          "cpu_percent": 0.5,
          "index": 1,
          "pid": 16771,
          "reason": "ok",
          "restarts": 0,
          "rss_bytes": 25714688,
          "ts": 1795579590.417,
          "up": true,
          "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock"
        }
      ],
      "timeout_ms": 2500
    }
  },
  "shadowed_routes": [
    {
      "loser": {
        "fn_name": "get.conflict.py",
        "runtime": "python"
      },
      "reason": "runtime node comes before python in the runtime order; `get.conflict.js` wins",
      "route": "/conflict",
      "winner": {
        "fn_name": "get.conflict.js",
        "runtime": "node"
      }
    }
  ],
  "warnings": [
    "/conflict: get.conflict.py (python) is shadowed: runtime node comes before python in the runtime order; `get.conflict.js` wins"
  ]
};

export const resolve404Sample: Resolve = {
  "method": "POST",
  "path": "/users/42",
  "status": 404,
  "url": "/users/42",
  "why": "/users/:id (users/[id].py) answers GET, not POST: a file route answers 404 for other methods (only explicit functions answer 405)"
};

export const resolve200Sample: Resolve = {
  "file": "users/[id].py",
  "function": "users/[id].py",
  "method": "GET",
  "params": {
    "id": "42"
  },
  "path": "/users/42",
  "route": "/users/:id",
  "runtime": "python",
  "source": "file",
  "status": 200,
  "url": "/users/42",
  "why": "GET /users/42 matches /users/:id (file route), served by users/[id].py (python)"
};
