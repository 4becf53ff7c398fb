package testdata

func InTestdata() {}
