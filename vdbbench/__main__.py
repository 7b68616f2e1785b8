from vdbbench.cli import main

raise SystemExit(main())
