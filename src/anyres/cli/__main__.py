from anyres.cli import main

main()
