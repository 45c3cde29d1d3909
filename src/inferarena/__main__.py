from inferarena.cli import main

main()
