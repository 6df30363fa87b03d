from sfcframe.cli import main

raise SystemExit(main())
