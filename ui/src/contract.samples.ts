// Captured from the engine serving fixtures/demo by tests/capture-samples.mjs; do not edit.
// Typed with the generated contract, so `tsc --noEmit` fails when the types drift from
// real data; the browser test checks the live JSON still has every key of these samples.
import type { Catalog, EngineEvent, Health, Resolve, RuntimeLogs } from './contract';

export const healthSample: Health = {
  "config_loaded_at": 1796127747.541,
  "defaults": {
    "timeout_ms": 2500,
    "max_concurrency": 20,
    "max_body_bytes": 1048576
  },
  "functions_root": "/path/to/fixtures/demo",
  "socket_base_dir": "/tmp/fastfn/s-1234",
  "runtime_order": [
    "python",
    "node",
    "php",
    "lua"
  ],
  "hot_reload": {
    "enabled": true,
    "last_catalog_scan_at": 1796127747.724,
    "watchdog": {
      "enabled": true,
      "active": true,
      "backend": "inotify"
    }
  },
  "routing": {
    "mapped_routes": 26,
    "mapped_route_conflicts": 0,
    "shadowed_routes": 1
  },
  "functions": {
    "summary": {
      "total": 22,
      "warm": 2,
      "stale": 0,
      "cold": 20,
      "keep_warm_enabled": 0,
      "pool_enabled": 0,
      "pool_active": 0,
      "pool_queued": 0,
      "pool_queue_drops": 0,
      "pool_queue_overflow_drops": 0,
      "pool_queue_timeout_drops": 0
    },
    "states": [
      {
        "runtime": "node",
        "name": "blog/[...slug].js",
        "key": "node/blog/[...slug].js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "bytes.js",
        "key": "node/bytes.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "clock",
        "key": "node/clock@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "counter",
        "key": "node/counter@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "counter",
        "key": "node/counter@v2",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "debug/whoami.js",
        "key": "node/debug/whoami.js@default",
        "state": "warm",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        },
        "warm_at": 1796127752.709
      },
      {
        "runtime": "node",
        "name": "page.js",
        "key": "node/page.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "shop/handler.js",
        "key": "node/shop/handler.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "text.js",
        "key": "node/text.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "time.js",
        "key": "node/time.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "node",
        "name": "users/index.js",
        "key": "node/users/index.js@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "docs/[[...page]].py",
        "key": "python/docs/[[...page]].py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "get.conflict.py",
        "key": "python/get.conflict.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "greet.py",
        "key": "python/greet.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "hello.py",
        "key": "python/hello.py@default",
        "state": "warm",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        },
        "warm_at": 1796127752.545
      },
      {
        "runtime": "python",
        "name": "legacy/ping.py",
        "key": "python/legacy/ping.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "pixel.py",
        "key": "python/pixel.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "post.users.py",
        "key": "python/post.users.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "settings/handler.py",
        "key": "python/settings/handler.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "teapot.py",
        "key": "python/teapot.py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "tools",
        "key": "python/tools@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      },
      {
        "runtime": "python",
        "name": "users/[id].py",
        "key": "python/users/[id].py@default",
        "state": "cold",
        "strict_fs": true,
        "worker_pool": {
          "enabled": false,
          "min_warm": 0,
          "max_workers": 20,
          "max_queue": 0,
          "idle_ttl_seconds": 300,
          "queue_timeout_ms": 0,
          "queue_poll_ms": 20,
          "overflow_status": 429,
          "active": 0,
          "queued": 0,
          "queue_drops": {
            "overflow": 0,
            "timeout": 0,
            "total": 0
          }
        }
      }
    ]
  },
  "runtimes": {
    "lua": {
      "socket": "inprocess:lua",
      "sockets": [],
      "routing": "in_process",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127752.734,
        "reason": "ok",
        "sockets": []
      }
    },
    "node": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-node.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock",
          "up": true,
          "ts": 1796127751.725,
          "reason": "ok",
          "pid": 1875,
          "restarts": 0,
          "cpu_percent": 0,
          "rss_bytes": 44425216
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127751.725,
        "reason": "ok",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock",
            "up": true,
            "ts": 1796127751.725,
            "reason": "ok",
            "pid": 1875,
            "restarts": 0,
            "cpu_percent": 0,
            "rss_bytes": 44425216
          }
        ]
      }
    },
    "php": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-php.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock",
          "up": false,
          "ts": 1796127747.724,
          "reason": "not needed",
          "pid": 0,
          "restarts": 0,
          "cpu_percent": 0,
          "rss_bytes": 0
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": false,
        "state": "not_needed",
        "ts": 1796127747.724,
        "reason": "not needed",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock",
            "up": false,
            "ts": 1796127747.724,
            "reason": "not needed",
            "pid": 0,
            "restarts": 0,
            "cpu_percent": 0,
            "rss_bytes": 0
          }
        ]
      }
    },
    "python": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-python.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock",
          "up": true,
          "ts": 1796127751.726,
          "reason": "ok",
          "pid": 1876,
          "restarts": 0,
          "cpu_percent": 0.5,
          "rss_bytes": 26832896
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127751.726,
        "reason": "ok",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock",
            "up": true,
            "ts": 1796127751.726,
            "reason": "ok",
            "pid": 1876,
            "restarts": 0,
            "cpu_percent": 0.5,
            "rss_bytes": 26832896
          }
        ]
      }
    }
  },
  "warnings": [
    "/conflict: get.conflict.js (node) is shadowed: runtime python comes before node in the runtime order; `get.conflict.py` wins"
  ]
};

export const catalogSample: Catalog = {
  "generated_at": 1796127747.724,
  "functions_root": "/path/to/fixtures/demo",
  "defaults": {
    "timeout_ms": 2500,
    "max_concurrency": 20,
    "max_body_bytes": 1048576
  },
  "runtime_order": [
    "python",
    "node",
    "php",
    "lua"
  ],
  "mapped_routes": {
    "/blog/:slug*": [
      {
        "runtime": "node",
        "fn_name": "blog/[...slug].js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "blog/[...slug].js",
        "explicit": false
      }
    ],
    "/bytes": [
      {
        "runtime": "node",
        "fn_name": "bytes.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "bytes.js",
        "explicit": false
      }
    ],
    "/clock": [
      {
        "runtime": "node",
        "fn_name": "clock",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "node/clock/handler.js",
        "explicit": true
      }
    ],
    "/clock/*": [
      {
        "runtime": "node",
        "fn_name": "clock",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "node/clock/handler.js",
        "explicit": true
      }
    ],
    "/conflict": [
      {
        "runtime": "python",
        "fn_name": "get.conflict.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "get.conflict.py",
        "explicit": false
      }
    ],
    "/counter": [
      {
        "runtime": "node",
        "fn_name": "counter",
        "version": "default",
        "methods": [
          "GET",
          "POST"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "counter/handler.js",
        "explicit": true
      }
    ],
    "/counter/*": [
      {
        "runtime": "node",
        "fn_name": "counter",
        "version": "default",
        "methods": [
          "GET",
          "POST"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "counter/handler.js",
        "explicit": true
      }
    ],
    "/counter@v2": [
      {
        "runtime": "node",
        "fn_name": "counter",
        "version": "v2",
        "methods": [
          "GET",
          "POST"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "counter/v2/handler.js",
        "explicit": true
      }
    ],
    "/counter@v2/*": [
      {
        "runtime": "node",
        "fn_name": "counter",
        "version": "v2",
        "methods": [
          "GET",
          "POST"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "counter/v2/handler.js",
        "explicit": true
      }
    ],
    "/debug/whoami": [
      {
        "runtime": "node",
        "fn_name": "debug/whoami.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "debug/whoami.js",
        "explicit": false
      }
    ],
    "/docs": [
      {
        "runtime": "python",
        "fn_name": "docs/[[...page]].py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "docs/[[...page]].py",
        "explicit": false
      }
    ],
    "/docs/:page*": [
      {
        "runtime": "python",
        "fn_name": "docs/[[...page]].py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "docs/[[...page]].py",
        "explicit": false
      }
    ],
    "/greet": [
      {
        "runtime": "python",
        "fn_name": "greet.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "greet.py",
        "explicit": false
      }
    ],
    "/hello": [
      {
        "runtime": "python",
        "fn_name": "hello.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "hello.py",
        "explicit": false
      }
    ],
    "/legacy/ping": [
      {
        "runtime": "python",
        "fn_name": "legacy/ping.py",
        "version": "default",
        "methods": [
          "GET",
          "POST"
        ],
        "source_rank": 2,
        "source": "routes_json",
        "allow_hosts": [],
        "force_url": false,
        "entry": "legacy/ping.py",
        "explicit": false
      }
    ],
    "/page": [
      {
        "runtime": "node",
        "fn_name": "page.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "page.js",
        "explicit": false
      }
    ],
    "/pixel": [
      {
        "runtime": "python",
        "fn_name": "pixel.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "pixel.py",
        "explicit": false
      }
    ],
    "/settings": [
      {
        "runtime": "python",
        "fn_name": "settings/handler.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "settings/handler.py",
        "explicit": false
      }
    ],
    "/shop": [
      {
        "runtime": "node",
        "fn_name": "shop/handler.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "shop/handler.js",
        "explicit": false
      }
    ],
    "/teapot": [
      {
        "runtime": "python",
        "fn_name": "teapot.py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "teapot.py",
        "explicit": false
      }
    ],
    "/text": [
      {
        "runtime": "node",
        "fn_name": "text.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "text.js",
        "explicit": false
      }
    ],
    "/time": [
      {
        "runtime": "node",
        "fn_name": "time.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "time.js",
        "explicit": false
      }
    ],
    "/tools": [
      {
        "runtime": "python",
        "fn_name": "tools",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "python/tools/handler.py",
        "explicit": true
      }
    ],
    "/tools/*": [
      {
        "runtime": "python",
        "fn_name": "tools",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 3,
        "source": "config",
        "allow_hosts": [],
        "force_url": false,
        "entry": "python/tools/handler.py",
        "explicit": true
      }
    ],
    "/users": [
      {
        "runtime": "python",
        "fn_name": "post.users.py",
        "version": "default",
        "methods": [
          "POST"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "post.users.py",
        "explicit": false
      },
      {
        "runtime": "node",
        "fn_name": "users/index.js",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "users/index.js",
        "explicit": false
      }
    ],
    "/users/:id": [
      {
        "runtime": "python",
        "fn_name": "users/[id].py",
        "version": "default",
        "methods": [
          "GET"
        ],
        "source_rank": 1,
        "source": "file",
        "allow_hosts": [],
        "force_url": false,
        "entry": "users/[id].py",
        "explicit": false
      }
    ]
  },
  "mapped_route_conflicts": {},
  "conflict_claimants": {},
  "shadowed_routes": [
    {
      "loser": {
        "fn_name": "get.conflict.js",
        "runtime": "node"
      },
      "reason": "runtime python comes before node in the runtime order; `get.conflict.py` wins",
      "route": "/conflict",
      "winner": {
        "fn_name": "get.conflict.py",
        "runtime": "python"
      }
    }
  ],
  "runtimes": {
    "lua": {
      "socket": "inprocess:lua",
      "sockets": [],
      "routing": "in_process",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127752.739,
        "reason": "ok",
        "sockets": []
      },
      "functions": []
    },
    "node": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-node.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock",
          "up": true,
          "ts": 1796127751.725,
          "reason": "ok",
          "pid": 1875,
          "restarts": 0,
          "cpu_percent": 0,
          "rss_bytes": 44425216
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127751.725,
        "reason": "ok",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-node.sock",
            "up": true,
            "ts": 1796127751.725,
            "reason": "ok",
            "pid": 1875,
            "restarts": 0,
            "cpu_percent": 0,
            "rss_bytes": 44425216
          }
        ]
      },
      "functions": [
        {
          "name": "blog/[...slug].js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/blog/:slug*"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "blog/[...slug].js"
        },
        {
          "name": "bytes.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/bytes"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "bytes.js"
        },
        {
          "name": "clock",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/clock",
              "/clock/*"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "node/clock/handler.js"
        },
        {
          "name": "counter",
          "has_default": true,
          "versions": [
            "v2"
          ],
          "policy": {
            "methods": [
              "GET",
              "POST"
            ],
            "routes": [
              "/counter",
              "/counter/*"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {
            "v2": {
              "methods": [
                "GET",
                "POST"
              ],
              "routes": [
                "/counter@v2",
                "/counter@v2/*"
              ],
              "timeout_ms": 2500,
              "max_concurrency": 20,
              "max_body_bytes": 1048576,
              "include_debug_headers": false
            }
          },
          "entry": "counter/handler.js"
        },
        {
          "name": "debug/whoami.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/debug/whoami"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": true
          },
          "versions_policy": {},
          "entry": "debug/whoami.js"
        },
        {
          "name": "page.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/page"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "page.js"
        },
        {
          "name": "shop/handler.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/shop"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "shop/handler.js"
        },
        {
          "name": "text.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/text"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "text.js"
        },
        {
          "name": "time.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/time"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "time.js"
        },
        {
          "name": "users/index.js",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/users"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "users/index.js"
        }
      ]
    },
    "php": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-php.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock",
          "up": false,
          "ts": 1796127747.724,
          "reason": "not needed",
          "pid": 0,
          "restarts": 0,
          "cpu_percent": 0,
          "rss_bytes": 0
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": false,
        "state": "not_needed",
        "ts": 1796127747.724,
        "reason": "not needed",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-php.sock",
            "up": false,
            "ts": 1796127747.724,
            "reason": "not needed",
            "pid": 0,
            "restarts": 0,
            "cpu_percent": 0,
            "rss_bytes": 0
          }
        ]
      },
      "functions": []
    },
    "python": {
      "socket": "unix:/tmp/fastfn/s-1234/fn-python.sock",
      "sockets": [
        {
          "index": 1,
          "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock",
          "up": true,
          "ts": 1796127751.726,
          "reason": "ok",
          "pid": 1876,
          "restarts": 0,
          "cpu_percent": 0.5,
          "rss_bytes": 26832896
        }
      ],
      "routing": "single",
      "timeout_ms": 2500,
      "health": {
        "up": true,
        "state": "up",
        "ts": 1796127751.726,
        "reason": "ok",
        "sockets": [
          {
            "index": 1,
            "uri": "unix:/tmp/fastfn/s-1234/fn-python.sock",
            "up": true,
            "ts": 1796127751.726,
            "reason": "ok",
            "pid": 1876,
            "restarts": 0,
            "cpu_percent": 0.5,
            "rss_bytes": 26832896
          }
        ]
      },
      "functions": [
        {
          "name": "docs/[[...page]].py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/docs",
              "/docs/:page*"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "docs/[[...page]].py"
        },
        {
          "name": "get.conflict.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/conflict"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "get.conflict.py"
        },
        {
          "name": "greet.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/greet"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "greet.py"
        },
        {
          "name": "hello.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/hello"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "hello.py"
        },
        {
          "name": "legacy/ping.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET",
              "POST"
            ],
            "routes": [
              "/legacy/ping"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "legacy/ping.py"
        },
        {
          "name": "pixel.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/pixel"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "pixel.py"
        },
        {
          "name": "post.users.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "POST"
            ],
            "routes": [
              "/users"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "post.users.py"
        },
        {
          "name": "settings/handler.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/settings"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "settings/handler.py"
        },
        {
          "name": "teapot.py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/teapot"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "teapot.py"
        },
        {
          "name": "tools",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/tools",
              "/tools/*"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "python/tools/handler.py"
        },
        {
          "name": "users/[id].py",
          "has_default": true,
          "versions": [],
          "policy": {
            "methods": [
              "GET"
            ],
            "routes": [
              "/users/:id"
            ],
            "timeout_ms": 2500,
            "max_concurrency": 20,
            "max_body_bytes": 1048576,
            "include_debug_headers": false
          },
          "versions_policy": {},
          "entry": "users/[id].py"
        }
      ]
    }
  },
  "warnings": [
    "/conflict: get.conflict.js (node) is shadowed: runtime python comes before node in the runtime order; `get.conflict.py` wins"
  ],
  "errors": []
};

export const resolve404Sample: Resolve = {
  "method": "POST",
  "url": "/users/42",
  "path": "/users/42",
  "status": 404,
  "why": "/users/:id (users/[id].py) answers GET, not POST: a method mismatch answers 404",
  "reason": "method_mismatch"
};

export const resolve200Sample: Resolve = {
  "method": "GET",
  "url": "/users/42",
  "path": "/users/42",
  "status": 200,
  "why": "GET /users/42 matches /users/:id (file route), served by users/[id].py (python)",
  "reason": "ok",
  "route": "/users/:id",
  "runtime": "python",
  "function": "users/[id].py",
  "file": "users/[id].py",
  "source": "file",
  "params": {
    "id": "42"
  }
};

export const logsSample: RuntimeLogs = {
  "entries": [
    {
      "function": "debug/whoami.js",
      "line": "hello from the handler",
      "runtime": "node",
      "stream": "stdout",
      "ts": 1796127752709
    }
  ]
};

export const requestEventSample: EngineEvent = {
  "type": "requests",
  "requests": [
    {
      "id": "req-1796127752709-1870-000003",
      "seq": 3,
      "ts": 1796127752709,
      "method": "GET",
      "path": "/debug/whoami",
      "status": 200,
      "reason": "ok",
      "kind": "function",
      "latency_us": 39882,
      "stages": {
        "route_us": 41,
        "deps_us": 0,
        "admission_us": 14,
        "queue_us": 0,
        "body_us": 13,
        "connect_us": 0,
        "build_us": 0,
        "cold_us": 0,
        "runtime_us": 39669,
        "handler_us": 0,
        "reply_us": 69,
        "respond_us": 52,
        "fault_us": 0
      },
      "runtime": "node",
      "function": "debug/whoami.js",
      "socket_index": 1,
      "queued": false,
      "cold": true,
      "captured": true,
      "replay": false
    }
  ],
  "left_out": 0
};
