from mlplatform.cli import main

raise SystemExit(main())
