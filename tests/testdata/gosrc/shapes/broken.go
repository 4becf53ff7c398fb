package shapes

func Broken( {
	this is not go at all
}}
